"""The training engine: K models of one architecture trained by compiled runs of steps.

layout    parameter storage: flat buffers and per-layer views
program   a step cut into work items (host side)
steps     the compiled work items; runs: the compiled runs the threads execute
pool      the threads (tickets, waiting that tolerates a busy machine)
blas      the one-threaded private BLAS the products run on
cpu       the host side of the CPU engine: runs of steps, inference, scratch
"""
