"""`make bench` (python -m bench): ciaoweb's performance figures.

Results: bench/results.json (every figure), bench/results.md (README-ready table),
bench/*.png (plots). See bench/__main__.py for the phases and their budgets.
"""
