"""Starting points for certificate profiles: the policy fields each preset fills in."""

from __future__ import annotations

from typing import Any

from profiles.choices import Preset

_CN_ONLY = {"CN": {"mode": "optional", "pattern": ""}}

PRESETS: dict[str, dict[str, Any]] = {
    Preset.TLS_SERVER: {
        "validity_days_default": 90,
        "validity_days_max": 397,
        "key_usages": ["digitalSignature", "keyEncipherment"],
        "extended_key_usages": ["serverAuth"],
        "subject_rules": _CN_ONLY,
        "copy_cn_to_sans": True,
        "require_san": True,
        "renewal_window_days": 30,
    },
    Preset.TLS_CLIENT: {
        "validity_days_default": 7,
        "validity_days_max": 90,
        "key_usages": ["digitalSignature", "keyEncipherment"],
        "extended_key_usages": ["clientAuth"],
        "subject_rules": {
            **_CN_ONLY,
            "O": {"mode": "optional", "pattern": ""},
            "OU": {"mode": "optional", "pattern": ""},
        },
        "copy_cn_to_sans": False,
        "require_san": False,
        "renewal_window_days": 2,
    },
    Preset.EMAIL: {
        "validity_days_default": 365,
        "validity_days_max": 825,
        "key_usages": ["digitalSignature", "keyEncipherment", "nonRepudiation"],
        "extended_key_usages": ["emailProtection"],
        "subject_rules": _CN_ONLY,
        "copy_cn_to_sans": False,
        "require_san": True,
        "renewal_window_days": 30,
    },
    Preset.DEVICE: {
        "validity_days_default": 365,
        "validity_days_max": 730,
        "key_usages": ["digitalSignature", "keyEncipherment"],
        "extended_key_usages": ["clientAuth"],
        "subject_rules": {
            "CN": {"mode": "required", "pattern": ""},
            "O": {"mode": "optional", "pattern": ""},
            "OU": {"mode": "optional", "pattern": ""},
            "C": {"mode": "optional", "pattern": "[A-Z]{2}"},
        },
        "copy_cn_to_sans": False,
        "require_san": False,
        "renewal_window_days": 30,
    },
    Preset.CUSTOM: {},
}


def preset_fields(preset: str) -> dict[str, Any]:
    return dict(PRESETS[preset])
