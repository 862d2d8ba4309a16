"""A local Stripe: localstripe plus what it lacks, answering in Stripe's own JSON shapes."""
