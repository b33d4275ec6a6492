"""Input limits, documented in docs/scenario.md and traces/README.md: beyond them
an input is refused with exit 2 before any work, instead of exhausting memory or
overflowing a number halfway through a run."""

MAX_REPLICATIONS = 1000  # the scenario's replications and --replications alike
MAX_TOKENS = 10_000_000  # input, output or cached tokens of one request
MAX_REQUESTS = 50_000_000  # requests of one replication (a synthetic trace's expected count, or a file's rows)
MAX_YAML_BYTES = 5 * 1024 * 1024  # a scenario file
MAX_YAML_NODES = 200_000  # YAML nodes with every alias expanded (a scenario has a few thousand)
MAX_SORT_ROWS = 20_000_000  # rows ``routesim trace import --sort`` sorts in memory (about 2 GB at that size)
MAX_PRICE_PER_MTOK = 1_000_000.0  # USD per million tokens ($1 a token): beyond it, sums of costs overflow
MAX_CARBON_G_PER_MTOK = 1e9  # grams CO2e per million tokens, for the same reason
MAX_SEED = 2**62 - 1  # a seed: fits the tables' signed 64-bit columns, with room for tune's fresh-seed offset
