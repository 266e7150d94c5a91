"""HTTP on the poller's side: the fetcher and its SSRF guard, response gates, per-host politeness, robots.txt and the egress budget."""
