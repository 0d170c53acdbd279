"""Settings given as TAP_QUAY_* environment variables, which `--config ENV` reads."""

from __future__ import annotations

import typing as t


def with_numbers(config: dict[str, t.Any], config_schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return the settings with each number setting given as text turned into a number.

    The SDK (0.54) turns text into integers, booleans and arrays, but leaves a ``number``
    setting such as ``TAP_QUAY_REQUEST_TIMEOUT=30`` as text, which its config check then
    refuses. Text that is not a number is left as it is, for that check to report.
    """
    properties = config_schema.get("properties", {})
    return {
        name: as_number(value) if is_number_setting(properties.get(name, {})) else value
        for name, value in config.items()
    }


def is_number_setting(setting_schema: dict[str, t.Any]) -> bool:
    """Tell whether a setting's JSON schema types it as a (non-integer) number."""
    kinds = setting_schema.get("type", [])
    return "number" in ([kinds] if isinstance(kinds, str) else kinds)


def as_number(value: t.Any) -> t.Any:
    """Turn number text into a float; leave anything else untouched."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return value
