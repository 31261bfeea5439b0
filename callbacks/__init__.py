from callbacks.sample_grid import SampleGrid

__all__ = ["SampleGrid"]
