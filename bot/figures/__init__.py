"""Figures made from the timeline: KPIs, digest, charts, export, signs."""
