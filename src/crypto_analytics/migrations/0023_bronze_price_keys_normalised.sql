-- Bronze candle keys are stored normalised: symbols upper-case (the token universe's spelling;
-- validation quarantines anything else as an unknown symbol) and source ids lower-case (every
-- source's and ccxt's id). Until now only silver's staging view normalised them, with
-- upper(symbol) and lower(source_api), which hid bronze's primary key from every query through
-- the view: looking up the candles of a changed series, or checking the view's grain, read all
-- of bronze. With the constraint the view passes the key through unchanged, bronze's primary key
-- serves those look-ups, and it also enforces the view's grain (so that test reads new rows only).
--
-- A row that breaks the rule stops the migration, naming how many there are and the fix: nothing
-- is rewritten silently (two spellings of one candle would collide on the key).
do $check$
declare
    offending bigint;
begin
    select count(*) into offending
    from bronze.raw_crypto_prices
    where symbol <> upper(symbol) or source_api <> lower(source_api);
    if offending > 0 then
        raise exception
            'bronze.raw_crypto_prices holds % row(s) with a lower-case symbol or an upper-case source id', offending
            using hint = 'update them to upper(symbol) / lower(source_api) (or delete duplicates), then run `crypto-analytics db init` again';
    end if;
end
$check$;

alter table bronze.raw_crypto_prices
    add constraint raw_crypto_prices_key_normalised
    check (symbol = upper(symbol) and source_api = lower(source_api));
