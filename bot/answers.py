"""Answers that use what the shopper said: a size from their measures, fees and days by region.

Templates live in shop.yml (`replies:`), so a shop rewords them without touching code.
"""

from __future__ import annotations

from typing import Any

from bot.knowledge import KnowledgeBase
from bot.slots import read_body, read_region, recommend_size


def reply_text(kb: KnowledgeBase, key: str, **values: Any) -> str:
    template = str(kb.shop.get(f"replies.{key}", "") or "")
    base = {"assistant_name": kb.shop.get("assistant_name", "小助手")}
    return template.format(**{**base, **values}) if template else ""


def personalised(kb: KnowledgeBase, intent: str, norm_text: str) -> str | None:
    """An answer built from the message's measures or region, or None to use the entry's answer."""
    if intent == "size.recommend":
        return _size(kb, norm_text)
    if intent in ("shipping.eta", "shipping.fee"):
        return _region(kb, intent, norm_text)
    return None


def _size(kb: KnowledgeBase, text: str) -> str | None:
    body = read_body(text)
    chart = kb.shop.get("sizes.chart") or []
    if body.shoe is not None and body.height is None and body.weight is None and body.size is None:
        return reply_text(kb, "shoe_recommend", shoe=body.shoe)
    if not body.any():
        return reply_text(kb, "size_missing")
    size = recommend_size(body, chart)
    if size is None:
        return reply_text(kb, "size_missing")
    if body.height is not None and body.weight is None and body.size is None:
        return reply_text(kb, "size_need_weight", height=int(body.height), size=size)
    used = []
    if body.height is not None:
        used.append(f"身高{int(body.height)}cm")
    if body.weight is not None:
        used.append(f"体重{int(body.weight)}斤")
    if body.size is not None and body.height is None and body.weight is None:
        used.append(f"平时穿{body.size}码")
    fit_note = str(kb.shop.get("sizes.fit_note", "")).rstrip("。")
    return reply_text(kb, "size_recommend", used="、".join(used), size=size, fit_note=fit_note)


def _region(kb: KnowledgeBase, intent: str, text: str) -> str | None:
    ship = kb.shop.get("shipping") or {}
    region = read_region(text, ship.get("local_regions", []), ship.get("remote_regions", []),
                         ship.get("hmt_regions", []))
    if region is None:
        return None
    eta = ship.get("eta", {}) or {}
    days = eta.get(region.group if region.group != "overseas" else "default", eta.get("default", ""))
    common = {"region": region.name, "days": days, "warehouse": ship.get("warehouse", ""),
              "overseas": ship.get("overseas", ""), "threshold": ship.get("free_shipping_threshold", ""),
              "base_fee": ship.get("base_fee", ""), "remote_fee": ship.get("remote_fee", ""),
              "hmt_fee": ship.get("hmt_fee", "")}
    if intent == "shipping.eta":
        return reply_text(kb, "eta_overseas" if region.group == "overseas" else "eta_region", **common)
    key = {"remote": "fee_remote", "hmt": "fee_hmt", "overseas": "fee_overseas"}.get(region.group, "fee_normal")
    return reply_text(kb, key, **common)
