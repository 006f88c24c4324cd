"""The fine-tuning core both tasks share: `FineTuner` (the two phases, the honest test), the policy
(`phases`), its guardrails, callbacks, cached features and metrics. It knows neither pixels nor tokens:
`shoulders.image` and `shoulders.text` build the model and the inputs it trains."""
