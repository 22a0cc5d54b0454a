"""One module per page of the site: each builds its page's view and writes it (bench.report.site orchestrates)."""
