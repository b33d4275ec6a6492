"""routesim policies inside real routers (``litellm``: a LiteLLM routing strategy). Each
integration imports its router's package, never the simulator or simpy."""
