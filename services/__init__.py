"""The shop's eight services and the kit they share."""
