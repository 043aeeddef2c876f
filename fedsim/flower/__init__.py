"""Flower apps: clients train registry models on partitions, a curious server records updates.

Modules, one job each: ``config`` (the validated run), ``partitions`` (which rows each client
holds), ``local_training`` (a client's SGD steps), ``records`` (Flower records ↔ tensors),
``run_dir`` (the run folder's layout), ``capture`` (Observations the server records),
``strategy`` (``CuriousFedAvg``), ``evaluation`` (global test accuracy), ``client_app`` and
``server_app`` (the Flower apps ``flwr run .`` loads), ``simulation`` (one call runs it all).
"""
