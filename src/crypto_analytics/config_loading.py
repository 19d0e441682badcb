"""Build the settings so that every configuration mistake is one line naming what was wrong.

Why a module of its own: pydantic-settings silently ignores an environment variable that names
no field (`CRYPTO_INGESTON__MAX_RETRIES`, a misspelt section), reports a list setting given a
bare word as "error parsing value for field ingestion", prints multi-line validation errors
with their input values (a model validator's input is the whole settings dict, database URL
included), and lets a YAML syntax error escape as a traceback. Here each of those becomes a
`ConfigError` with one line: the key or variable, what is wrong, and the valid choices.

It walks the Settings model itself, so a section another module adds to `Settings` (and every
key inside it) is checked the same way without being listed here.
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from crypto_analytics.errors import ConfigError
from crypto_analytics.redaction import redact, register_secret

#: CRYPTO_* variables read by the platform outside the settings model.
NON_SETTINGS_VARIABLES = frozenset({"CRYPTO_CONFIG_FILE"})
#: At most this many validation problems are named; the count of the rest follows.
MAX_PROBLEMS = 3

SettingsT = typing.TypeVar("SettingsT", bound=BaseSettings)


def build_settings(
    settings_cls: type[SettingsT], config_file: Path, environ: Mapping[str, str] | None = None
) -> SettingsT:
    """The settings, or ConfigError with a one-line reason; registers every secret for redaction."""
    env = dict(os.environ if environ is None else environ)
    check_yaml(config_file)
    check_environment(settings_cls, env)
    try:
        settings = settings_cls()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, settings_cls, env, config_file)) from None
    except SettingsError as exc:  # pragma: no cover - check_environment catches these first
        raise ConfigError(f"invalid configuration: {exc}") from None
    for value in _secret_values(settings):
        register_secret(value)
    return settings


# --- the YAML file ------------------------------------------------------------------------------


def check_yaml(config_file: Path) -> None:
    """ConfigError naming the file, line and column of a YAML syntax error, or a non-mapping top."""
    try:
        data = yaml.safe_load(config_file.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = " ".join(str(exc.problem or exc).split())
        raise ConfigError(f"{config_file} is not valid YAML ({where}): {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{config_file} is not valid YAML: {' '.join(str(exc).split())}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {config_file}: {exc.strerror}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{config_file} must be a mapping of settings sections, got a {type(data).__name__}"
        )


# --- environment variables ----------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The type inside Optional[...] / X | None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_complex(annotation: Any) -> bool:
    """Whether pydantic-settings reads this field from the environment as JSON."""
    inner = _unwrap(annotation)
    origin = typing.get_origin(inner)
    return (
        _is_model(inner)
        or origin in (list, dict, set, tuple, frozenset)
        or inner
        in (
            list,
            dict,
            set,
            tuple,
        )
    )


def _example(annotation: Any) -> str:
    inner = _unwrap(annotation)
    origin = typing.get_origin(inner) or inner
    if origin in (list, set, tuple, frozenset):
        return 'a JSON list, e.g. \'["a", "b"]\''
    return 'a JSON object, e.g. \'{"key": "value"}\''


def _env_names(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """{FIELD_NAME: field} for the fields read as CRYPTO_<FIELD>, plus aliases read bare."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names: dict[str, str] = {}
    for name, field in settings_cls.model_fields.items():
        if isinstance(field.validation_alias, str):
            continue  # read from its alias (e.g. COINGECKO_API_KEY), not CRYPTO_<NAME>
        names[(prefix + name).upper()] = name
    return names


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_environment(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
    """Every CRYPTO_* variable must name a setting, and JSON-valued ones must hold JSON."""
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    delimiter = str(settings_cls.model_config.get("env_nested_delimiter") or "__")
    aliases = {
        f"{prefix}{field.validation_alias}".upper(): str(field.validation_alias)
        for field in settings_cls.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(prefix) or upper in NON_SETTINGS_VARIABLES:
            continue
        if upper in aliases:
            raise ConfigError(
                f"unknown setting {variable} (this secret is read from {aliases[upper]}, "
                f"without the {prefix} prefix)"
            )
        path = upper[len(prefix) :].lower().split(delimiter.lower())
        annotation = _resolve(settings_cls, path, variable, prefix, delimiter)
        value = environ[variable]
        if annotation is not None and _is_complex(annotation) and value.strip():
            try:
                json.loads(value)
            except ValueError:
                raise ConfigError(
                    f"{variable}={redact(value)!r} is not JSON: this setting takes "
                    f"{_example(annotation)}"
                ) from None


def _resolve(
    settings_cls: type[BaseModel], path: list[str], variable: str, prefix: str, delimiter: str
) -> Any:
    """The annotation a variable's path leads to; ConfigError at the first unknown key."""
    model: type[BaseModel] = settings_cls
    where = ""
    for depth, key in enumerate(path):
        fields = {
            name: field
            for name, field in model.model_fields.items()
            if not isinstance(field.validation_alias, str)
        }
        if key not in fields:
            section = f"section {where!r} has" if where else "there is"
            valid = sorted(fields)
            raise ConfigError(
                f"unknown setting {variable}: {section} no key {key!r}{_suggest(key, valid)} "
                f"(valid: {', '.join(valid)})"
            )
        annotation = _unwrap(fields[key].annotation)
        where = f"{where}.{key}" if where else key
        remaining = path[depth + 1 :]
        if not remaining:
            return fields[key].annotation
        if _is_model(annotation):
            model = annotation
            continue
        if typing.get_origin(annotation) is dict or annotation is dict:
            return None  # any key of a mapping setting is allowed
        nested = (prefix + delimiter.join(path[: depth + 1])).upper()
        raise ConfigError(
            f"unknown setting {variable}: {where} is a single value (set it as {nested}), "
            "not a section"
        )
    return None  # pragma: no cover - path is never empty


# --- validation errors --------------------------------------------------------------------------


def _field_at(
    settings_cls: type[BaseModel], loc: tuple[Any, ...]
) -> tuple[Any, type[BaseModel] | None]:
    """(annotation of the field at loc or None, the model that holds its last key)."""
    model: type[BaseModel] | None = settings_cls
    annotation: Any = None
    for key in loc:
        if model is None:
            return None, None
        if isinstance(key, int):  # an item of a list of models
            inner = _unwrap(annotation)
            args = typing.get_args(inner)
            model = args[0] if args and _is_model(args[0]) else None
            continue
        field = model.model_fields.get(str(key))
        if field is None:
            return None, model
        annotation = field.annotation
        inner = _unwrap(annotation)
        model = inner if _is_model(inner) else model if key == loc[-1] else None
    return annotation, model


def _is_secret(annotation: Any) -> bool:
    return _unwrap(annotation) is SecretStr


def _env_variable_for(
    loc: tuple[Any, ...], settings_cls: type[BaseSettings], env: Mapping[str, str]
) -> str | None:
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    delimiter = str(settings_cls.model_config.get("env_nested_delimiter") or "__")
    names = [str(part) for part in loc if not isinstance(part, int)]
    for depth in range(len(names), 0, -1):
        candidate = (prefix + delimiter.join(names[:depth])).upper()
        for variable in env:
            if variable.upper() == candidate:
                return variable
    return None


def describe_validation_error(
    exc: ValidationError,
    settings_cls: type[BaseSettings],
    env: Mapping[str, str],
    config_file: Path,
) -> str:
    """One line naming each problem's key, what is wrong, and where the value came from."""
    problems: list[str] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = ".".join(str(part) for part in loc) or "settings"
        annotation, holder = _field_at(settings_cls, loc)
        if error["type"] == "extra_forbidden" and holder is not None:
            key = str(loc[-1])
            valid = sorted(holder.model_fields)
            text = f"{where}: unknown key{_suggest(key, valid)} (valid: {', '.join(valid)})"
        else:
            text = f"{where}: {error['msg']}"
            value = error.get("input")
            if isinstance(value, str | int | float | bool) and not _is_secret(annotation) and loc:
                text += f", got {redact(str(value))!r}"
        variable = _env_variable_for(loc, settings_cls, env) if loc else None
        text += f" (from {variable})" if variable else f" (in {config_file.name})" if loc else ""
        problems.append(text)
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    suffix = f"; and {more} more" if more > 0 else ""
    return redact(f"invalid configuration: {shown}{suffix}")


def _secret_values(model: BaseModel) -> list[str]:
    """Every SecretStr value in a settings object, nested sections included."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found.extend(_secret_values(value))
    return found
