"""Where decisions go besides the kernel: other enforcers (CrowdSec's Local API)."""
