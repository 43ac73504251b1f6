"""How the bench tools name a policy in their tables: a policy given as a YAML file by its file
stem ("/x/zumik-variant.yaml" -> "zumik-variant"), a built-in policy by its name. Shared by
routing_tables.py and seed_targets.py, which import it from their own folder."""
import os


def display_name(policy):
    if policy.endswith((".yaml", ".yml")):
        return os.path.splitext(os.path.basename(policy))[0]
    return policy
