"""``fedleak view``: a Streamlit viewer of the attack runs, simulations and bench stores in DIR.

Reading (``paths``, ``discovery``, ``bench_store``) is kept apart from drawing (``app`` and the
``*_page`` modules), so the readers are tested without Streamlit and the pages without files
outside the folder the user named.
"""
