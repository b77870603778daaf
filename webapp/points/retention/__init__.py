"""Retention (保存期間): no citizen–merchant history past the refund window.

- `window`: the refund window, the platform's setting and a municipality's override.
- `compact`: `flask points compact`, which rewrites history older than the window so
  that the citizen's side keeps monthly totals per category and the merchant's side
  keeps its payments, with no link between the two (balances, sums, lots unchanged).
- `scan`: `flask points privacy-scan`, which looks through every table for a citizen and
  a merchant on one row older than the window.

See docs/privacy.md for the design and the retention of every table.
"""
