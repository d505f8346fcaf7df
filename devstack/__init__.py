"""Local process orchestration: KServe's kserve-sklearnserver and the transformer on loopback.

`python -m devstack demo` (make demo) and `python -m devstack up` (make serve) use it; the
integration tests and benchmarks start their stacks through devstack.stack as well.
"""
