-- The dashboard's login role: it reads schema gold and nothing else, and never writes.
-- Its password is not here (migrations are in git): `crypto-analytics db init` sets it from
-- DASHBOARD_DB_PASSWORD (crypto_analytics.dashboard_reader). Without one the role can log in only
-- where the server trusts local connections.
--
-- Roles belong to the whole server, not to one database: another database on the same server
-- (a test database, a second warehouse) may have created it already, or be creating it right now
-- (then the catalogue's unique index answers unique_violation instead of duplicate_object).
do $role$
begin
    create role dashboard_reader login nosuperuser nocreatedb nocreaterole noinherit noreplication;
exception
    when duplicate_object or unique_violation then
        null;
end
$role$;

-- Belt and braces: even a granted write would fail, and a runaway query is cut off.
alter role dashboard_reader set default_transaction_read_only = on;
alter role dashboard_reader set statement_timeout = '30s';

-- What is in gold now, and everything the migrating user (the user dbt runs as: both use
-- CRYPTO_DATABASE_URL) creates there later. dbt rebuilds a table or view as a new object on every
-- full run, so a one-off grant would be lost; default privileges are granted to each new object.
-- A gold view over another schema (ml, portfolio, alerts) is read with its owner's rights, so
-- the role needs no grant on those schemas.
grant usage on schema gold to dashboard_reader;
grant select on all tables in schema gold to dashboard_reader;
alter default privileges in schema gold grant select on tables to dashboard_reader;
