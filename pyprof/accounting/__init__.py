"""Accounting over records: reconciliation (utilization, MFU/HFU), Method 1 / Method 2 estimates, their uncertainty,
compute trends and algorithmic-efficiency curves. Pure functions of records and numbers: no sources, no writers."""
