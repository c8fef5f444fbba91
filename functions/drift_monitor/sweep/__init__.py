"""The sweep: every bucket of an account through the domain's assessment, its state rows,
its digest and its report. Built on the adapters and the domain."""
