"""The STIF network and its parts."""
from .stif import STIF, STIFOutput, count_parameters, parameter_table

__all__ = ["STIF", "STIFOutput", "count_parameters", "parameter_table"]
