"""The back office's name, set once for every admin page (the audit log's page is `backoffice.admin.audit`)."""

from django.contrib import admin

# Set once for every admin page, the dashboard included (it renders with `admin.site.each_context`).
admin.site.site_header = "Tollgate back office"
admin.site.site_title = "Tollgate back office"
admin.site.index_title = "Back office"
# "View site" leads to the HTTP API's documentation: Tollgate has no public site of its own.
admin.site.site_url = "/api/docs/"
# The navigation sidebar takes a fifth of a 1366 px screen from every list; the home page and the breadcrumbs
# lead everywhere it does.
admin.site.enable_nav_sidebar = False
