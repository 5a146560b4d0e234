"""The ``strata`` command line; it calls only public APIs of the layers."""
