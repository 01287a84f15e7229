"""Streamlit glue for the featviz dashboard: shared sidebar, URL state, rendering with progress, charts.

No torch here: everything that computes goes through featviz_core. Pages in ../pages stay thin.
"""
