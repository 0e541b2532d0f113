"""The usage store on disk: layout, crash journal, merge and reads (no network).

Use it through :class:`prismatic_usage.UsageStore`; the modules here are private.
"""
