"""Evaluation: metric tables, report figures, Grad-CAM, and `fer-ensemble report`."""
from .gradcam import gradcam, last_conv_layer, overlay
from .report import Report, resolve_data, write_report
from .tables import comparison_table, disagreement_matrix, pair_table, per_class_table, to_markdown

__all__ = ["gradcam", "overlay", "last_conv_layer", "write_report", "resolve_data", "Report", "per_class_table",
           "comparison_table", "pair_table", "disagreement_matrix", "to_markdown"]
