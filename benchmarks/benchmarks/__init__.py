"""fastdnn's asv benchmark suite (see asv.conf.json at the repository root)."""
