"""The one private cattrs converter turning WeChat's JSON into wxqr's models.

Unknown extra keys (``errcode``, ``errmsg``, fields WeChat adds later) are ignored; a missing
or mistyped required field becomes :class:`wxqr.ResponseDecodeError`, never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn

from .errors import ResponseDecodeError
from .models import ApiQuota, CloudBase

T = TypeVar("T")


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False, prefer_attrib_converters=False)

    # WeChat sends numbers as strings here and there; accept "1" for an int but not "x".
    def _int(value: Any, _: type) -> int:
        if isinstance(value, bool):
            raise TypeError("boolean where a number was expected")
        return int(value)

    converter.register_structure_hook(int, _int)

    def _str(value: Any, _: type) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return str(value)

    converter.register_structure_hook(str, _str)

    # cattrs would happily turn the string "1.2.3.4" into ["1", ".", "2", ...]: a list of
    # strings must be a JSON array.
    def _strings(value: Any, _: type) -> list[str]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_str(item, str) for item in value]

    converter.register_structure_hook_func(lambda t: t == list[str], _strings)
    converter.register_structure_hook_func(
        lambda t: t == tuple[str, ...], lambda v, t: tuple(_strings(v, t))
    )

    # openapi/quota/get nests the counters: {"quota": {daily_limit, used, remain},
    # "rate_limit": {...}, "component_rate_limit": {...}}; the model is flat.
    flat_quota = make_dict_structure_fn(ApiQuota, converter)

    def _api_quota(value: Any, _: type) -> ApiQuota:
        quota = value.get("quota") if isinstance(value, Mapping) else None
        if not isinstance(quota, Mapping):
            raise TypeError("the answer has no 'quota' object")
        windows = {
            name: value[name]
            for name in ("rate_limit", "component_rate_limit")
            if isinstance(value.get(name), Mapping)
        }
        return flat_quota({**quota, **windows}, ApiQuota)

    converter.register_structure_hook(ApiQuota, _api_quota)
    # query_urllink's documented example spells cloud_base.domain "doamin" (links.md §6,
    # unconfirmed whether the live API does): read either spelling.
    cloud_base = converter.gen_structure_attrs_fromdict(CloudBase)

    def _cloud_base(value: Any, cls: type) -> CloudBase:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        if "domain" not in value and "doamin" in value:
            value = {**value, "domain": value["doamin"]}
        return cloud_base(value, cls)

    converter.register_structure_hook(CloudBase, _cloud_base)
    return converter


_converter = _make_converter()


def structure(data: Mapping[str, Any], cls: type[T], *, endpoint: str) -> T:
    """Build ``cls`` from a decoded JSON answer, or raise :class:`ResponseDecodeError`."""
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise ResponseDecodeError(
            f"unexpected answer shape for {cls.__name__}: {detail}", endpoint=endpoint
        ) from exc
