"""One reader module per on-disk layout the multiview task accepts; detect.py picks one."""
