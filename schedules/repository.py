"""``get_schedule_repository()`` for code written against the original design.

A thin facade over :mod:`schedules.services` and :mod:`schedules.selectors`.
"""

from schedules import selectors, services


class ScheduleRepository:
    def create_schedule(self, **fields):
        return services.create_schedule(**fields)

    def update_schedule(self, schedule_id, **changes):
        return services.update_schedule(schedule_id=schedule_id, **changes)

    def delete_schedule(self, schedule_id):
        return services.delete_schedule(schedule_id=schedule_id)

    def get_schedules_by_domain(self, domain):
        return list(selectors.get_schedules_by_domain(domain=domain))

    def get_schedule_by_domain_config_id(self, domain_config_id):
        return selectors.get_schedule_by_domain_config_id(domain_config_id=domain_config_id)


def get_schedule_repository() -> ScheduleRepository:
    return ScheduleRepository()
