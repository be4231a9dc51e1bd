"""HTTP plumbing shared by the routes: bodies, JSON responses, error translation."""
