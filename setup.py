from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open('mmlr/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmlr',
    version=read_version(),
    description='Layer-wise LR decay and chainable LR schedulers for '
    'mmengine (OpenMMLab) training, as a plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmlr', 'mmlr.*']),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.6',
        'mmengine>=0.10.7,<0.11',
        'numpy',
    ],
    extras_require={
        # the demo model and data set
        'demo': ['timm>=1.0,<1.1', 'torchvision', 'scikit-learn'],
        # the PNGs of tools/vis_lr.py and tools/lr_find.py
        'tools': ['matplotlib'],
        # mmengine's DeepSpeedStrategy (mmlr.deepspeed_strategy)
        'deepspeed': ['deepspeed>=0.19,<0.20'],
        'tests': [
            'timm>=1.0,<1.1', 'torchvision', 'scikit-learn', 'mmcv-lite',
            'mmpretrain>=1.2,<1.3', 'pytest', 'hypothesis', 'matplotlib',
            'deepspeed>=0.19,<0.20'
        ],
    },
    license='Apache-2.0',
)
