"""Linux security modules: AppArmor and SELinux labels.
"""
