"""One replication's ground truth and the routers' beliefs about it: never seen by a policy."""
