"""Why the plan is what it is: rules that bind or fail, marginal values, rule costs by re-solve,
shortfalls of demand, causes, and the French sentences that say it."""
