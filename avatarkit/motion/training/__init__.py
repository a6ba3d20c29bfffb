"""Offline tools that rebuild the motion model: espeak corpus, training, visual check.

Not imported at run time; training needs PyTorch (CPU) and SciPy, inference does not.
"""
