"""The trainer's memory planner is the shared one (launch sizes jobs with the same arithmetic)."""
from tracecause.memory import (plan_from_spec, plan_train_memory, zero3_host_bytes_per_node,  # noqa: F401
                               zero3_model_state_bytes)
