"""prismatic_usage: Prismatic usage metrics as billing-ready pandas frames."""
