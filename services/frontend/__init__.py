"""The web shop: server-rendered pages for shoppers and a JSON API under /api/ for load tests."""
