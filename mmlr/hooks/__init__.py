from .scheduler_check import SchedulerCheckHook

__all__ = ['SchedulerCheckHook']
