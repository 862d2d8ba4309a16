"""AudiFi coin service. Artist coins, staking, liquidity pools and the lottery."""
