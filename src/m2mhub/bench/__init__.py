"""Side-by-side load benchmarks: our hub against reference servers, measured by mqbench.

``m2mhub bench`` (and ``benchmarks/run.py``) start each server pinned to one core, drive it with
the Rust load generator ``mqbench`` pinned to another, and write the results as a Markdown table
into ``benchmarks/README.md``. Nothing here asserts speed; it only measures and reports.
"""
