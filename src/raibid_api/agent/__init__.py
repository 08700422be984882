"""The reference agent: claims jobs, runs their pipelines, streams logs, reports outcomes.

The entry point is `raibid_api.agent.worker.run_agent`.
"""
