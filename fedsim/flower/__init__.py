"""Flower apps: clients train registry models on partitions, a curious server records updates.

Modules, one job each: ``config`` (the validated run), ``partitions`` (which rows each client
holds), ``local_training`` (a client's SGD steps), ``records`` (Flower records ↔ tensors),
``run_dir`` (the run folder's layout), ``capture`` (Observations the server records),
``strategy`` (``CuriousServer``), ``evaluation`` (global test accuracy), ``defense_hooks``
(where defenses act), ``client_app`` and ``server_app`` (the Flower apps), ``simulation``
(one call runs it all).
"""
