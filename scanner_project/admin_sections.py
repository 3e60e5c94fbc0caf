"""Read-only sections on a saved object's admin page (pause record, audit trail)."""


def page_section(title: str, fields: tuple[str, ...], *, first: bool = False) -> type:
    """A ModelAdmin mixin adding ``fields`` (read-only methods of the admin) as
    a section titled ``title``: after the first fieldset, or at the end."""

    class PageSection:
        def get_readonly_fields(self, request, obj=None):
            return (*super().get_readonly_fields(request, obj), *fields)

        def get_fieldsets(self, request, obj=None):
            fieldsets = super().get_fieldsets(request, obj)
            if obj is None or obj.pk is None:
                return fieldsets
            section = (title, {"fields": fields})
            return (*fieldsets[:1], section, *fieldsets[1:]) if first else (*fieldsets, section)

    PageSection.__name__ = f"{title.title().replace(' ', '')}Section"
    return PageSection
