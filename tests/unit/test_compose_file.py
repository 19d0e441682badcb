"""docker-compose.yml is valid against the Compose specification (no engine runs here), and its
Airflow services agree with the local stack on what must be shared."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-1",
    "airflow-worker-2",
}
#: Every component and worker must hold the same value of each, or task tokens fail.
SHARED_SECRETS = ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_spec():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    done = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_services_reference_what_exists():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis"} | AIRFLOW_SERVICES <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            named = volume.split(":", 1)[0]
            if not named.startswith((".", "/")):
                assert named in compose["volumes"], f"{name} uses undeclared volume {named}"
    dockerfile = ROOT / services["airflow-scheduler"]["build"]["dockerfile"]
    assert dockerfile.is_file()
    assert "scripts/stack.py dbt-parse" in dockerfile.read_text(), "DAGs need their dbt ls files"


def test_airflow_services_share_secrets_broker_and_api_url():
    services = _compose()["services"]
    envs = {name: services[name]["environment"] for name in AIRFLOW_SERVICES}
    for key in (*SHARED_SECRETS, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CORE__EXECUTOR"):  # fmt: skip
        values = {name: env.get(key) for name, env in envs.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    for key in SHARED_SECRETS:  # required from .env, never a default written here
        assert ":?" in envs["airflow-scheduler"][key], key


def test_the_celery_profile_has_a_broker_and_two_workers():
    services = _compose()["services"]
    celery = {name for name, s in services.items() if "celery" in s.get("profiles", [])}
    assert celery == {"redis", "airflow-worker-1", "airflow-worker-2"}
    hostnames = {services[w]["command"].split("--celery-hostname ")[1].split()[0]
                 for w in ("airflow-worker-1", "airflow-worker-2")}  # fmt: skip
    assert len(hostnames) == 2
    for worker in ("airflow-worker-1", "airflow-worker-2"):
        assert services[worker]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_dbt_docs_never_write_where_the_dags_are_rendered_from():
    command = _compose()["services"]["dbt-docs"]["command"]
    assert command.count("--target-path target_docs") == 2
