"""The synthetic transaction stream: population, fraud scenarios, labels, drift, publishing."""
