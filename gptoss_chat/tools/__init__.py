"""Tools the model can call: browser, python, apply_patch, behind one interface (base.py)."""
