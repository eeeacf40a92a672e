"""loaxa: broadcast scheduling for Vietnamese commune radio and village loudspeakers."""

__version__ = "0.1.0"
