"""Answers that use what the shopper said: a size from their measures, fees and days by region.

Templates are the shop's voice (bot.dialogue.voice), so a shop rewords them without touching code.
"""

from __future__ import annotations

from bot.dialogue.knowledge import KnowledgeBase
from bot.dialogue.slots import read_body, read_region, recommend_size
from bot.dialogue.voice import fmt, join, say


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
        return say(kb.shop, "shoe_recommend", shoe=body.shoe)
    if not body.any():
        return say(kb.shop, "size_missing")
    size = recommend_size(body, chart)
    if size is None:
        return say(kb.shop, "size_missing")
    if body.height is not None and body.weight is None and body.size is None:
        return say(kb.shop, "size_need_weight", height=int(body.height), size=size)
    used = []
    if body.height is not None:
        used.append(fmt(kb.shop, "measure_height", height=int(body.height)))
    if body.weight is not None:
        used.append(fmt(kb.shop, "measure_weight", weight=int(body.weight)))
    if body.size is not None and body.height is None and body.weight is None:
        used.append(fmt(kb.shop, "measure_size", size=body.size))
    fit_note = str(kb.shop.get("sizes.fit_note", "")).rstrip("。")
    return say(kb.shop, "size_recommend", used=join(kb.shop, used), size=size, fit_note=fit_note)


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
        return say(kb.shop, "eta_overseas" if region.group == "overseas" else "eta_region", **common)
    key = {"remote": "fee_remote", "hmt": "fee_hmt", "overseas": "fee_overseas"}.get(region.group, "fee_normal")
    return say(kb.shop, key, **common)
