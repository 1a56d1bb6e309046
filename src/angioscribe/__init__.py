"""angioscribe: coronary angiography AI from cath-lab study to draft report."""

__version__ = "0.1.0"
